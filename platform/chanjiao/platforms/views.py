from flask import Blueprint

bp = Blueprint("platforms", __name__, url_prefix="/platforms")
