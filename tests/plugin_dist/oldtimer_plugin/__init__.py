name = "oldtimer"
version = "0.9"
hook_api = ">=0.1,<1"
