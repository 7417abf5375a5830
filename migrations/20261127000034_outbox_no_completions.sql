-- The outbox queues a completion from its event and never read its copy of completions back.
DROP TABLE outbox_completions;
