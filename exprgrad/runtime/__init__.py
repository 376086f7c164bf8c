"""What runs inside a user's Python program: compiled modules, the import
hook, `Value` and `nn`."""
