from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.storage import ObjectStorage, get_storage

StorageDep = Annotated[ObjectStorage, Depends(get_storage)]
