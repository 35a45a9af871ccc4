-- Publications: articles for the public and for professionals (draft, scheduled, published,
-- withdrawn). A scheduled article is published once publish_at_us has passed: the reading
-- queries compare it with the clock, no job flips the status. Times are µs since the epoch.
CREATE TABLE publication (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    summary TEXT NOT NULL,
    audience TEXT NOT NULL CHECK (audience IN ('public', 'professionals')),
    status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'published', 'withdrawn')),
    publish_at_us BIGINT,
    withdrawn_at_us BIGINT,
    author_id TEXT NOT NULL,
    author_name TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    version BIGINT NOT NULL
);
-- The reading lists: visible articles of an audience, newest first.
CREATE INDEX publication_listing ON publication (audience, status, publish_at_us);
CREATE TABLE publication_tag (
    publication_id TEXT NOT NULL REFERENCES publication (id) ON DELETE CASCADE,
    -- The tag's key (a slug, what ?tag= filters on) and its words as the editor typed them.
    tag TEXT NOT NULL,
    label TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (publication_id, tag)
);
CREATE INDEX publication_tag_key ON publication_tag (tag);
-- The search index: each distinct folded word (accents removed, lower case, French function
-- words left out) of an article's title, text and tags. A query word matches the terms it
-- begins: a range scan of the primary key (term >= 'renal' AND term < 'renal' || U+10FFFF).
CREATE TABLE publication_term (
    term TEXT NOT NULL,
    publication_id TEXT NOT NULL REFERENCES publication (id) ON DELETE CASCADE,
    PRIMARY KEY (term, publication_id)
);
CREATE INDEX publication_term_article ON publication_term (publication_id);
