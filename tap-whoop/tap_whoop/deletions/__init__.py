"""Deletions, which WHOOP only shows by a record's absence or a webhook: what a complete window read says
(`reconcile`), the webhook events (`events`), a run's view of the stored events (`feed`), and what a
collection does after a complete read (`complete_read`)."""
