-- Placeholder for migration 0009 (search), built on another branch: delete this file when
-- that branch is merged.
SELECT 1;
