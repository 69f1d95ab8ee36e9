import pytest

from numbpie.catalog import Catalog, CatalogError, import_csv, import_folder


def test_add_get_and_dedupe(tmp_path):
    catalog = Catalog(tmp_path / "c" / "catalog.sqlite")
    image = tmp_path / "c" / "a.jpg"
    first = catalog.add(image, "Red top", "top", {"color": "red"}, {"sku": "1"})
    again = catalog.add(image, "Other title", "top")
    assert first == again and len(catalog) == 1
    (product,) = catalog.get([first])
    assert product.title == "Red top" and product.attributes == {"color": "red"}
    assert product.metadata == {"sku": "1"} and product.image == str(image.absolute())


def test_paths_inside_the_catalog_folder_are_stored_relative(tmp_path):
    catalog = Catalog(tmp_path / "c" / "catalog.sqlite")
    pid = catalog.add(tmp_path / "c" / "img" / "x.png", "x")
    moved = tmp_path / "moved"
    (tmp_path / "c").rename(moved)
    (product,) = Catalog(moved / "catalog.sqlite").get([pid])
    assert product.image == str(moved.absolute() / "img" / "x.png")


def test_get_keeps_order_and_rejects_unknown_ids(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    ids = catalog.add_many([(tmp_path / f"{n}.jpg", f"p{n}", "", {}, {}) for n in range(5)])
    assert [p.id for p in catalog.get(ids[::-1])] == ids[::-1]
    with pytest.raises(KeyError):
        catalog.get([ids[-1] + 100])
    catalog.remove(ids[:2])
    assert catalog.ids() == ids[2:]


def test_import_folder_with_category_and_product_folders(tmp_path, image_tree):
    (image_tree / "dress" / "gown_7").mkdir()
    (image_tree / "dress" / "item_00.jpg").rename(image_tree / "dress" / "gown_7" / "front.jpg")
    (image_tree / "dress" / "notes.txt").write_text("not an image")
    catalog = Catalog(tmp_path / "cat" / "catalog.sqlite")
    ids = import_folder(catalog, image_tree)
    products = catalog.get(ids)
    assert len(products) == 12
    assert {p.category for p in products} == {"top", "dress"}
    gown = next(p for p in products if p.image.endswith("front.jpg"))
    assert gown.title == "gown 7" and gown.category == "dress"
    assert import_folder(catalog, image_tree) == ids  # re-import adds nothing


def test_import_folder_errors(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    with pytest.raises(CatalogError, match="not a folder"):
        import_folder(catalog, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="No images"):
        import_folder(catalog, tmp_path / "empty")


def test_import_csv(tmp_path):
    (tmp_path / "data.csv").write_text(
        'image,title,category,attributes,price\n'
        'imgs/a.jpg,Blue dress,dress,"{""color"": ""blue""}",30\n'
        'imgs/b.jpg,,top,,12\n'
    )
    catalog = Catalog(tmp_path / "cat" / "catalog.sqlite")
    a, b = catalog.get(import_csv(catalog, tmp_path / "data.csv"))
    assert (a.title, a.category, a.attributes, a.metadata) == ("Blue dress", "dress", {"color": "blue"}, {"price": "30"})
    assert b.title == "b" and b.image == str((tmp_path / "imgs" / "b.jpg").absolute())
    with pytest.raises(CatalogError, match="no 'path' column"):
        import_csv(catalog, tmp_path / "data.csv", image_column="path")


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    bad = tmp_path / "catalog.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CatalogError, match="not a numbpie catalog"):
        Catalog(bad)
