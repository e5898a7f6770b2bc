"""The scheduler: schedules (models), firing them exactly once (firing), and its loop."""
