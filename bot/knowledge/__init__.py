"""The knowledge base: articles and contacts from `knowledge/`, searchable with SQLite FTS5.

    build_knowledge_base(source_dir, db_path)   knowledge/ → DATA_DIR/knowledge.db
    check_knowledge(source_dir)                 what `safe-report kb check` reports
    KnowledgeBase.open(db_path)                 read-only, cached; .search(), .article(), ...
    render.render_article_body / advice_line_text   placeholders → text

Articles are built into a database (rather than read from markdown at run time) so the
action server does no parsing, and a build can be checked and swapped in atomically.
"""

from bot.knowledge.articles import Article, Source
from bot.knowledge.check import CheckReport, check_knowledge
from bot.knowledge.contacts import Contact, OpeningHours
from bot.knowledge.search import KnowledgeBase, SearchResult
from bot.knowledge.store import KnowledgeBaseUnavailable, build_knowledge_base

__all__ = [
    "Article",
    "CheckReport",
    "Contact",
    "KnowledgeBase",
    "KnowledgeBaseUnavailable",
    "OpeningHours",
    "SearchResult",
    "Source",
    "build_knowledge_base",
    "check_knowledge",
]
