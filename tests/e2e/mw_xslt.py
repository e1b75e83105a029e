"""The Transform example of docs/middleware.md: an XSLT stylesheet (lxml)
turns the XML an app serves into HTML. Kept word for word in step with that
page, whose example ``test_middleware_readme.py`` also runs."""

import threading

from lxml import etree

STYLESHEET = b"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="html" encoding="utf-8"/>
  <xsl:template match="/books">
    <html><body><ul>
      <xsl:for-each select="book">
        <li><xsl:value-of select="."/> (<xsl:value-of select="@year"/>)</li>
      </xsl:for-each>
    </ul></body></html>
  </xsl:template>
</xsl:stylesheet>"""

_local = threading.local()  # one compiled stylesheet per serving thread


def to_html(body: bytes, environ: dict) -> bytes:
    if not hasattr(_local, "xslt"):
        _local.xslt = etree.XSLT(etree.XML(STYLESHEET))
    return bytes(_local.xslt(etree.fromstring(body)))
