"""Health check of the MongoDB stand-in image (NOT MongoDB): exits 0 when the server
answers `hello` as a writable primary within 3 s, 1 otherwise."""

import sys

from pymongo import MongoClient
from pymongo.errors import PyMongoError

try:
    client = MongoClient(
        "mongodb://127.0.0.1:27017/?directConnection=true",
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
    )
    reply = client.admin.command("hello")
except PyMongoError as e:
    print(f"stand-in not answering: {e}")
    sys.exit(1)
sys.exit(0 if reply.get("isWritablePrimary") else 1)
