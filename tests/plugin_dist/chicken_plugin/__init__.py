name = "chicken"
version = "0.1"
requires = ("egg",)
