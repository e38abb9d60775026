"""The application layer: request context, dataloaders, query use-cases and lifecycle actions.

Never builds HTTP requests or SQL strings itself: it talks to providers/, events/ and db/.
"""
