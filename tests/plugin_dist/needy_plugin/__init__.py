name = "needy"
version = "0.1"
requires = ("nonexistent",)
