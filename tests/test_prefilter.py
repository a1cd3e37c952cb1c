"""The elements feedparser would misread are renamed, and the document stays well-formed."""

from __future__ import annotations

from xml.parsers import expat

import pytest

from ingest.digest.prefilter import without_strays

RSS1 = b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"'


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            b"<rss><channel><item><title>a&nbsp;b</title><social><description>x</description>"
            b"<link/><e></e><empty /></social></item></channel></rss>",
            b"<rss><channel><item><title>a&nbsp;b</title><social><stray-description>x"
            b"</stray-description><stray-link/><stray-e></stray-e><stray-empty /></social></item>"
            b"</channel></rss>",
            id="nested plain elements, empty or not, an undeclared entity around",
        ),
        pytest.param(
            b"<rss><channel><item><social><x:y xmlns:x=\"u\"><link a='/>'>z</link></x:y>"
            b"<social/></social></item></channel></rss>",
            b"<rss><channel><item><social><x:y xmlns:x=\"u\"><stray-link a='/>'>z</stray-link>"
            b"</x:y><stray-social/></social></item></channel></rss>",
            id="below a namespaced element, a '>' in an attribute, a same-named parent",
        ),
        pytest.param(
            b"<rdf:RDF " + RSS1 + b'><item rdf:about="x"><foo><title>no</title></foo></item>'
            b"</rdf:RDF>",
            b"<rdf:RDF " + RSS1 + b'><item rdf:about="x"><foo><stray-title>no</stray-title>'
            b"</foo></item></rdf:RDF>",
            id="RSS 1.0: plain is the item's own namespace",
        ),
        pytest.param(
            b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><a:link xmlns:a="urn:a" href=" "/>'
            b'<link href=""></link><link href="x"/></entry></feed>',
            b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><a:stray-link xmlns:a="urn:a" '
            b'href=" "/><stray-link href=""></stray-link><link href="x"/></entry></feed>',
            id="empty hrefs",
        ),
    ],
)
def test_strays_are_renamed_and_the_document_stays_well_formed(
    document: bytes, expected: bytes
) -> None:
    renamed = without_strays(document)

    assert renamed == expected
    reader = expat.ParserCreate()
    reader.UseForeignDTD(True)  # &nbsp; undeclared, as in feeds
    reader.Parse(renamed, True)


@pytest.mark.parametrize(
    "document",
    [
        b"<rss><channel><item><description><p>x<b>y</b></p></description>"
        b'<author><name>Ann</name></author><source url="u"><title>S</title></source>'
        b'<body xmlns="http://www.w3.org/1999/xhtml"><p>q</p></body></item></channel></rss>',
        b"<rss><channel><item><social><description>x</description></item></channel></rss>",
        b"<feed><entry><author><name>Ann</name></author></entry></feed>",
    ],
    ids=["structures and markup of the item", "ill-formed", "no item and no empty href"],
)
def test_what_feedparser_reads_right_and_what_expat_cannot_read_are_left_alone(
    document: bytes,
) -> None:
    assert without_strays(document) is document
