-- Conversations we start (a new outbound email to a customer) and the customer's history.

-- The customer of a conversation postroom started: the first To address of its first
-- message, lower case ('' for conversations a customer started: their sender is the
-- customer).
ALTER TABLE conversations ADD COLUMN customer_addr TEXT NOT NULL DEFAULT '';
CREATE INDEX conversations_customer ON conversations (customer_addr) WHERE customer_addr <> '';

-- The customer's history looks messages up by sender address, in any letter case.
CREATE INDEX messages_from_addr_lower ON messages (lower(from_addr));
