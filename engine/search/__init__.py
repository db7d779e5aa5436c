"""The query pipeline: everything between a typed query and the results a person sees, in the order it runs.

- query.py       `SearchRequest` (what was asked: words or a file, filters, depth of re-ranking, sort) and
                 `parse` (what the words mean to the search)
- vector.py      the visual retriever: query vector → nearest frames in the ANN index → one candidate per file
- candidates.py  `Candidate`: a file on its way to becoming a result, with its frames and scores so far
- rerank.py      the Slow model re-scores the head of the shortlist
- fusion.py      how the Slow and Fast scores combine
- cutoff.py      how many results clear the relevance cutoff
- pipeline.py    `QueryPipeline.run`: the stages above in order, then sorting and the files' details

`engine.Library.search` and `Library.similar` are the facade over it.
"""

from engine.search.query import SORT_ORDERS, SearchRequest, SortOrder

__all__ = ["SORT_ORDERS", "SearchRequest", "SortOrder"]
