"""Adapters to upstream panels. Never imports strawberry, the database or resolvers."""
