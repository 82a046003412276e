-- Placeholder for migration 0011, built on another branch (templates, collision guard):
-- delete this file when that branch is merged (0013_outbound is renumbered then).
SELECT 1;
