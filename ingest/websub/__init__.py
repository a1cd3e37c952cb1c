"""WebSub (W3C Recommendation, https://www.w3.org/TR/websub/) as a subscriber: a hub pushes a
feed's new content to ``ingest serve`` instead of waiting to be polled.

- ``rules``: pure decisions: which hub and topic a source advertises, when to ask a hub
  (subscribe, renew, unsubscribe), whether a verification is one we asked for, whether pushed
  content is signed with the subscription's secret. No I/O; tested by tables.
- ``callback``: the WSGI app the daemon mounts at ``/websub/``: verification of intent (GET)
  and content distribution (POST), handed to a ``Subscriber`` (``ingest.pipeline.push``).

``rules`` imports the vocabulary only; ``callback`` the vocabulary and ``rules``. The
pipeline's ``push`` module does the I/O: requests to hubs, the store, and pushed content
through the same path as a poll.
"""
