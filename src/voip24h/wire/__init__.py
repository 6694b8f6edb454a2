"""The partner protocol as bytes: request structs, rendering, cursors, export, OpenAPI."""
