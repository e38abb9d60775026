"""The GraphQL contract: types, inputs, enums, error rendering and the root bindings."""
