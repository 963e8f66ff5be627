from aiops.cli import app

app()
