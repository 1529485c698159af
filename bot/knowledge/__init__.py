"""The knowledge base: typed models and the validating loader."""

from bot.knowledge.loader import knowledge_checksum, load_knowledge
from bot.knowledge.models import LANGUAGES, KnowledgeBase, Problem

__all__ = ["LANGUAGES", "KnowledgeBase", "Problem", "knowledge_checksum", "load_knowledge"]
