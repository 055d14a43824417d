-- When the catalogue copy last took a full listing. Until it has taken one, the copy is not the catalogue: stock
-- events bring only the products they touch (a fresh orders database that hears one restock would list one product).
CREATE TABLE catalogue_listing (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    listed_at  timestamptz NOT NULL DEFAULT now()
);
