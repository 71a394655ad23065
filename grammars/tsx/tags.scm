; TSX: what it adds to typescript/tags.scm (read first, then this)

(jsx_opening_element name: (identifier) @name) @reference.class
(jsx_self_closing_element name: (identifier) @name) @reference.class
