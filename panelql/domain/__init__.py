"""The shared vocabulary: the unified records and statuses.

Providers produce these, the application layer works with them and the schema renders them.
This package imports nothing from the layers around it.
"""
