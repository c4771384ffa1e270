"""Typed SQLAlchemy models, one module per aggregate; importing this registers them all."""

from mailer.models.campaign import Campaign, CampaignStep
from mailer.models.campaign_revision import CampaignRevision
from mailer.models.captured_email import CapturedEmail
from mailer.models.cart import Cart, CartItem
from mailer.models.contact import AnonymousId, Contact
from mailer.models.coupon import Coupon
from mailer.models.enrollment import Enrollment
from mailer.models.event import Event
from mailer.models.link import Link
from mailer.models.message import Message
from mailer.models.order import Order
from mailer.models.reason import ContactReason
from mailer.models.store import Store
from mailer.models.suppression import Suppression
from mailer.models.task import ManagerTask
from mailer.models.template_version import TemplateVersion
from mailer.models.track_queue import QueuedTrack, TrackQueueLease
from mailer.models.tracking import TrackingEvent
from mailer.models.user import User

__all__ = [
    "AnonymousId",
    "Campaign",
    "CampaignRevision",
    "CampaignStep",
    "CapturedEmail",
    "Cart",
    "CartItem",
    "Contact",
    "ContactReason",
    "Coupon",
    "Enrollment",
    "Event",
    "Link",
    "ManagerTask",
    "Message",
    "Order",
    "QueuedTrack",
    "Store",
    "Suppression",
    "TemplateVersion",
    "TrackQueueLease",
    "TrackingEvent",
    "User",
]
