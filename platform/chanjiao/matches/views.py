from flask import Blueprint

bp = Blueprint("matches", __name__)
