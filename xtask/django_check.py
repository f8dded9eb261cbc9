"""The Django models and example queries of the docs, run against a real database (`cargo xtask django`).

    python django_check.py ROOT sqlite PATH
    python django_check.py ROOT postgres URL

Reads every fenced ```python block of ROOT/README.md and ROOT/docs/*.md whose first line is `# django-model`
(model definitions) or `# django-query` (example queries). The model blocks become the models.py of a throwaway
app; on SQLite, `models.UUIDField(` becomes `models.TextField(`, as the docs tell SQLite users to do. Then every
model runs `Model.objects.all()[:5]` (the database must hold rows for it) and, on PostgreSQL, `get(pk=...)` of the
first row; every query block runs with the models in scope, and each QuerySet it leaves in a variable is
evaluated. Any error ends the check with its traceback.
"""

import pathlib
import re
import sys
import tempfile
import urllib.parse

BLOCK = re.compile(r"^```python\n(# django-(model|query)\b.*?)^```", re.S | re.M)


def doc_blocks(root):
    found = {"model": [], "query": []}
    for path in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for match in BLOCK.finditer(path.read_text()):
            found[match.group(2)].append((path.relative_to(root), match.group(1)))
    return found


def database(backend, target):
    if backend == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": target}
    url = urllib.parse.urlsplit(target)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": url.path.lstrip("/"),
        "USER": urllib.parse.unquote(url.username or ""),
        "PASSWORD": urllib.parse.unquote(url.password or ""),
        "HOST": url.hostname,
        "PORT": url.port or 5432,
    }


def main():
    root, backend, target = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    found = doc_blocks(root)
    for kind in ("model", "query"):
        if not found[kind]:
            sys.exit(f"no ```python block starting with `# django-{kind}` in README.md or docs/*.md")
        print(f"{kind} blocks: " + ", ".join(str(path) for path, _ in found[kind]))

    app = pathlib.Path(tempfile.mkdtemp()) / "docmodels"
    app.mkdir()
    (app / "__init__.py").write_text("")
    code = "\n\n".join(code for _, code in found["model"])
    if backend == "sqlite":
        code = code.replace("models.UUIDField(", "models.TextField(")
    (app / "models.py").write_text(code)
    sys.path.insert(0, str(app.parent))

    import django
    from django.conf import settings
    from django.db.models import QuerySet

    settings.configure(
        INSTALLED_APPS=["docmodels"],
        DATABASES={"default": database(backend, target)},
        USE_TZ=True,
        TIME_ZONE="UTC",
    )
    django.setup()
    from django.apps import apps

    import docmodels.models

    print(f"{backend}, Django {django.get_version()}:")
    for model in apps.get_app_config("docmodels").get_models():
        rows = list(model.objects.all()[:5])
        if not rows:
            sys.exit(f"{model.__name__}.objects.all()[:5] returned no rows: the demo database should fill its view")
        print(f"  {model.__name__}.objects.all()[:5]: {len(rows)} rows, first pk {rows[0].pk}")
        if backend == "postgres":  # SQLite's text timestamps never equal Django's form (the docs say so)
            assert model.objects.get(pk=rows[0].pk).pk == rows[0].pk
            print(f"  {model.__name__}.objects.get(pk=<that pk>): found")

    for path, code in found["query"]:
        scope = dict(vars(docmodels.models))
        exec(compile(code, f"{path}: django-query block", "exec"), scope)
        querysets = {name: value for name, value in scope.items() if isinstance(value, QuerySet)}
        if not querysets:
            sys.exit(f"{path}: a django-query block leaves no QuerySet in a variable")
        for name, queryset in querysets.items():
            rows = list(queryset)
            print(f"  {path}: {name}: {len(rows)} rows" + (f", first {rows[0]}" if rows else ""))


if __name__ == "__main__":
    main()
