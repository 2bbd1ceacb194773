"""Email through a transactional outbox in the warehouse."""
