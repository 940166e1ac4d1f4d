from django.contrib import admin

from scheduler.jobs import control
from scheduler.jobs.models import ContainerImage, GroupLimits, Job, JobArray, JobEvent, Mount, Quota


class EventInline(admin.TabularInline):
    model = JobEvent
    extra = 0
    readonly_fields = ["at", "status", "message"]
    can_delete = False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "kind", "status", "priority", "queue", "attempts", "created_at", "finished_at"]
    list_filter = ["status", "kind", "queue"]
    search_fields = ["id", "owner__username", "kind", "queue"]
    readonly_fields = ["created_at", "queued_at", "started_at", "finished_at", "lease", "attempts"]
    inlines = [EventInline]
    actions = ["cancel_jobs"]

    @admin.action(description="Cancel the selected jobs")
    def cancel_jobs(self, request, queryset) -> None:
        for job in queryset:
            control.cancel(job, by=request.user.username)


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    list_display = ["user", "max_gpus", "max_waiting", "max_priority"]


@admin.register(JobArray)
class JobArrayAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "kind", "created_at"]


@admin.register(ContainerImage)
class ContainerImageAdmin(admin.ModelAdmin):
    list_display = ["image", "allow_network", "description", "added_by", "created_at"]
    search_fields = ["image", "description"]

    def save_model(self, request, obj, form, change) -> None:
        obj.added_by = obj.added_by or request.user
        super().save_model(request, obj, form, change)


@admin.register(Mount)
class MountAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "path", "everyone", "description"]
    filter_horizontal = ["users", "groups"]


@admin.register(GroupLimits)
class GroupLimitsAdmin(admin.ModelAdmin):
    list_display = ["group", "max_time_limit"]
