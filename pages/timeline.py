import dash
from dash import html

dash.register_page(__name__, path="/", name="Timeline")


def layout(**_):
    return html.Div("timeline")
