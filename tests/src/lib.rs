//! Helpers shared by the end-to-end tests (starting servers, databases, clients).
