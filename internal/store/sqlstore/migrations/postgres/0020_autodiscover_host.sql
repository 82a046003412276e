-- autodiscover_host is the host an administrator names for Exchange autodiscover of an EWS
-- mailbox whose host is empty: only it is asked, instead of the address's domain. Empty
-- (every mailbox before) means autodiscover from the address.
ALTER TABLE mailboxes ADD COLUMN autodiscover_host TEXT NOT NULL DEFAULT '';
