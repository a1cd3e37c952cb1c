"""Deterministic benchmark content: RSS 2.0 documents and post bodies, mixed Chinese and English.

Everything is derived from a seed, so two runs (and the farm, the per-stage benchmark and the
search store) see byte-identical content. The documents imitate what the project really ingests,
RSSHub's RSS 2.0 for Chinese news sites (see the seed post): CDATA titles and descriptions,
RFC 2822 dates, a ``guid`` equal to the link, one category, an author. Each item's body is about
3 KB of HTML (3.1 KB on average): a lead naming the item, a cnBeta-style ``/thumb/`` image
with ``data-original`` and ``referrerpolicy``, Chinese and English paragraphs, a quote and a
relative "read more" link, so sanitizing and URL resolution do their real work. Every item's
body is distinct (the lead names feed and item), so N feeds of M items are N x M posts.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import cache

SEED = 20220604

SITE = "https://news.bench.example"
IMAGES = "https://img.bench.example"
EPOCH = datetime(2024, 6, 4, 7, 0, 48, tzinfo=UTC)
"""Newest item's date; older items step back ``ITEM_SPACING`` each."""
ITEM_SPACING = timedelta(minutes=7)

_ENGLISH_TEXT = (
    "the data center chip market supply chain cloud model training open source release "
    "battery electric vehicle charging network privacy regulator antitrust policy court "
    "smartphone camera sensor display memory storage bandwidth latency network operator "
    "satellite launch rocket orbit telescope research university study scientists energy "
    "solar grid carbon climate emissions quantum computing processor benchmark performance "
    "security vulnerability patch update browser engine developer platform app store users "
    "subscription revenue quarter earnings analysts investors shares startup funding round "
    "robot factory automation semiconductor lithography wafer foundry export controls "
    "licence software hardware firmware kernel compiler language runtime database index "
    "search query engine ranking advertising marketplace logistics delivery drone airline "
    "railway highway city mobile broadband fiber wireless spectrum standard protocol "
    "encryption password authentication identity wallet payment bank currency inflation "
    "reported according announced said expected percent million billion year week today"
)
ENGLISH = tuple(_ENGLISH_TEXT.split())

_CHINESE_TEXT = (
    "数据 芯片 人工智能 大模型 开源 发布 电池 电动汽车 充电 网络 隐私 监管 反垄断 法院 "
    "智能手机 摄像头 传感器 屏幕 内存 存储 带宽 延迟 运营商 卫星 发射 火箭 轨道 望远镜 "
    "研究 大学 科学家 能源 太阳能 电网 碳排放 气候 量子计算 处理器 性能 安全 漏洞 补丁 "
    "浏览器 开发者 平台 应用商店 用户 订阅 营收 季度 财报 分析师 投资者 股价 初创公司 "
    "融资 机器人 工厂 自动化 半导体 光刻机 晶圆 代工 出口管制 软件 硬件 固件 内核 "
    "编译器 数据库 索引 搜索 引擎 广告 物流 快递 无人机 航空公司 铁路 城市 移动 宽带 "
    "光纤 无线 频谱 标准 协议 加密 密码 身份 钱包 支付 银行 货币 通胀 据报道 宣布 表示 "
    "预计 百分之 亿元 万元 今年 本周 今天 消息 记者 官方 公司 市场 行业 产品 技术 服务 "
    "中国 美国 欧洲 日本 北京 上海 深圳 杭州 工程师 团队 项目 计划 测试 版本 功能 系统"
)
CHINESE = tuple(_CHINESE_TEXT.split())

BRANDS = ("Nature", "Apple", "NASA", "Tesla", "OpenAI", "Intel", "TSMC", "Linux", "SpaceX", "ARM")
AUTHORS = ("cnBeta", "IT之家", "36氪", "Solidot", "TechWeb", "爱范儿")

ZH_PARAGRAPHS = 4
EN_PARAGRAPHS = 3
POOL = 512
"""Paragraphs of each language in the pool items draw from."""


@dataclass(frozen=True, slots=True)
class Pools:
    """Pre-written paragraphs: an item picks a few, so building 200,000 bodies is quick."""

    chinese: tuple[str, ...]
    english: tuple[str, ...]


@cache
def pools(seed: int = SEED) -> Pools:
    rng = random.Random(seed)
    return Pools(
        chinese=tuple(_chinese_paragraph(rng) for _ in range(POOL)),
        english=tuple(_english_paragraph(rng) for _ in range(POOL)),
    )


def _chinese_paragraph(rng: random.Random) -> str:
    parts: list[str] = []
    length = 0
    target = rng.randint(80, 100)
    while length < target:
        clause = "".join(rng.choice(CHINESE) for _ in range(rng.randint(3, 6)))
        parts.append(clause)
        length += len(clause) + 1
    return "，".join(parts) + "。"


def _english_paragraph(rng: random.Random) -> str:
    sentences: list[str] = []
    words = 0
    target = rng.randint(42, 60)
    while words < target:
        count = rng.randint(8, 16)
        sentence = " ".join(rng.choice(ENGLISH) for _ in range(count))
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
        words += count
    return " ".join(sentences)


def item_title(rng: random.Random, feed: int, item: int) -> str:
    brand = rng.choice(BRANDS)
    words = "".join(rng.choice(CHINESE) for _ in range(rng.randint(3, 5)))
    tail = " ".join(rng.choice(ENGLISH) for _ in range(2))
    return f"{brand} 证实：{words} {tail} ({feed}-{item})"


def item_body(rng: random.Random, feed: int, item: int, title: str, *, seed: int = SEED) -> str:
    """One item's HTML body (~3 KB); the lead names ``feed`` and ``item``, so it is unique."""
    pool = pools(seed)
    zh = [pool.chinese[rng.randrange(POOL)] for _ in range(ZH_PARAGRAPHS)]
    en = [pool.english[rng.randrange(POOL)] for _ in range(EN_PARAGRAPHS)]
    path = f"{EPOCH.year}/{feed % 1000:03d}/{feed}-{item}"
    return (
        f"<div><p><strong>{title}</strong> —— 第 {item + 1} 篇，来源 {feed} 号 "
        f"(item {item + 1} of feed {feed}).</p>"
        f'<p style="text-align:center"><img src="{IMAGES}/thumb/article/{path}.png" '
        f'data-original="{IMAGES}/article/{path}.png" referrerpolicy="no-referrer" '
        f'alt="{title}"></p>'
        f"<p>{zh[0]}</p><p>{en[0]}</p><p>{zh[1]}</p>"
        f"<blockquote><p>{en[1]}</p></blockquote>"
        f"<p>{zh[2]}</p><p>{en[2]}</p><p>{zh[3]}</p>"
        f'<p>阅读全文 <a href="/articles/{feed}/{item}.htm" target="_blank">Read more</a></p>'
        "</div>"
    )


def item_date(feed: int, item: int, items: int) -> datetime:
    return EPOCH - ITEM_SPACING * (feed * items + item)


def feed_document(feed: int, items: int, *, seed: int = SEED, revision: int = 0) -> bytes:
    """Feed number ``feed``'s RSS 2.0 document with ``items`` items, as served by the farm.

    Revision ``r > 0`` is the same feed ``r`` updates later: ``r`` new items on top (dated after
    the original ones) and the newest original item edited (its title and body say so); every
    other item is byte-identical to revision 0, so a reader stores ``r`` new entries and updates
    one.
    """
    rng = random.Random(seed * 1_000_003 + feed)
    author = AUTHORS[feed % len(AUTHORS)]
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:atom="http://www.w3.org/2005/Atom" version="2.0"><channel>'
        f"<title><![CDATA[{author} - 科技资讯 {feed}]]></title>"
        f"<link>{SITE}/feeds/{feed}</link>"
        f"<description><![CDATA[{author} 第 {feed} 号频道 - Made with love by RSSHub]]>"
        "</description><generator>RSSHub</generator><language>zh-cn</language>"
        f"<lastBuildDate>{format_datetime(EPOCH, usegmt=True)}</lastBuildDate><ttl>5</ttl>"
    ]
    original = [
        _item(rng, feed, item, item_date(feed, item, items), seed=seed) for item in range(items)
    ]
    if revision and original:
        edited = random.Random(seed * 1_000_003 + feed)
        original[0] = _item(
            edited, feed, 0, item_date(feed, 0, items), seed=seed, edit=f" (更新 {revision})"
        )
    later = random.Random((seed * 1_000_003 + feed) * 7919 + revision)
    added = [
        _item(later, feed, items + extra, EPOCH + ITEM_SPACING * (extra + 1), seed=seed)
        for extra in reversed(range(revision))
    ]
    parts += added + original
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")


def _item(
    rng: random.Random, feed: int, item: int, published: datetime, *, seed: int, edit: str = ""
) -> str:
    author = AUTHORS[feed % len(AUTHORS)]
    title = item_title(rng, feed, item) + edit
    link = f"{SITE}/articles/{feed}/{item}.htm"
    return (
        f"<item><title><![CDATA[{title}]]></title>"
        f"<description><![CDATA[{item_body(rng, feed, item, title, seed=seed)}]]>"
        f"</description><pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
        f'<guid isPermaLink="false">{link}</guid><link>{link}</link>'
        f"<author><![CDATA[{author}]]></author><category>{rng.choice(CHINESE)}</category>"
        "</item>"
    )


def feed_documents(feeds: int, items: int, *, seed: int = SEED) -> Iterator[bytes]:
    for feed in range(feeds):
        yield feed_document(feed, items, seed=seed)
