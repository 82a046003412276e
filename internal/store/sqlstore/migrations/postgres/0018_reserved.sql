-- Placeholder on branch h-wake only: version 18 belongs to another branch (h-cluster's
-- migration). Delete this file when merging; 0019_wakeup.sql follows that one.
SELECT 1;
