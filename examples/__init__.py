"""User-defined models written against emjax's model contract (used by the tests and notebooks)."""
