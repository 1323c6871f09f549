"""Pure domain logic of the cloud: no IO, no database, no HTTP. Testable without mocks."""
