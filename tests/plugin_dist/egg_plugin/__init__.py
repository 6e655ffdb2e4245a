name = "egg"
version = "0.1"
requires = ("chicken",)
