from flask import Blueprint

bp = Blueprint("inbox", __name__, url_prefix="/inbox")
