"""A deployment's own custom handlers, loaded through CUSTOM_HANDLER_MODULES in the tests."""

from workers.custom_handlers import handler


@handler("add")
def add(args, context):
    numbers = args.get("numbers")
    if not isinstance(numbers, list) or not all(isinstance(n, (int, float)) for n in numbers):
        raise ValueError("args.numbers must be a list of numbers")
    return {"sum": sum(numbers)}
