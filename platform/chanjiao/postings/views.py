from flask import Blueprint

bp = Blueprint("postings", __name__)
