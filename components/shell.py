"""Placeholder shell (the frontend replaces this)."""
import dash
from dash import html


def create_shell():
    return html.Div([html.H1("Floorpulse"), dash.page_container])
