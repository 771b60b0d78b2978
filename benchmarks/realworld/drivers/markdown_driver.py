"""Python-Markdown 3.5.2 (33 modules): extensions loaded by name at run time."""

import markdown
from rw_harness import cache, main, ran

TEXT = """# Fruit *report*

Some **bold** text, a [link](http://example.com "title") & an <b>inline</b> tag.

| fruit  | count |
|:-------|------:|
| apple  | 3     |
| cherry | 140   |

```python
print("hello")
```

Text with a footnote[^1].

[^1]: The footnote.

## Second *section*

- one
- two
"""


@cache
def tables_and_code(text):
    ran("tables_and_code")
    return markdown.markdown(
        text, extensions=["markdown.extensions.tables", "markdown.extensions.fenced_code"]
    )


@cache
def toc_and_footnotes(text):
    ran("toc_and_footnotes")
    md = markdown.Markdown(extensions=["markdown.extensions.toc", "markdown.extensions.footnotes"])
    html = md.convert(text)
    return html, md.toc


@cache
def plain(text):
    ran("plain")
    return markdown.markdown(text)


if __name__ == "__main__":
    main(
        [
            ("tables_and_code", tables_and_code, (TEXT,)),
            ("toc_and_footnotes", toc_and_footnotes, (TEXT,)),
            ("plain", plain, (TEXT,)),
        ]
    )
