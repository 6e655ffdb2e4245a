import clientela_no_such_dependency  # noqa: F401  (the failure under test)
name = "broken"
version = "0.1"
