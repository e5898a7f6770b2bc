"""Services: what people and roles do with the queue, on top of the store and the models.

Enqueueing (``enqueue``), people's actions on jobs and queues (``actions``), firing
schedules (``firing``), pipeline runs (``pipelines``).
"""
