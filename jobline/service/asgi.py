from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from jobline.service.static import with_static_files

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobline.service.settings")
application = with_static_files(get_asgi_application())
