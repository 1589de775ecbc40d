"""Helpers that tests share: the live kernel, network namespaces, ansible runs."""
