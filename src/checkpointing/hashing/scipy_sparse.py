"""stub"""


def register() -> None:
    pass
