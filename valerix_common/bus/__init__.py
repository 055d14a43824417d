"""Bus messages and senders shared by both services (Azure Service Bus or the local PostgreSQL bus)."""
