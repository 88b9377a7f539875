import click


@click.group()
def main():
    """restorative-bot"""
