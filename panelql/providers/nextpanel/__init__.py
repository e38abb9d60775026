"""NextPanel hosting panel, several servers behind one API (seed 002, upstream-apis.md §11)."""
