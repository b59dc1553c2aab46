// One page of a server list ({items, total} answered to ?page=&size=): the rows, the total, the
// pager's page and size, a loading flag and the error in words. Pages keep their own filters and
// pass them in fetchPage; first() goes back to page 1 (after a filter changed).
import { ref } from 'vue'
import { ElMessage } from 'element-plus'
import { messageOf } from '../api'

/**
 * @param fetchPage ({page, size}) => Promise<{items, total}>
 * @param options.size first page size; options.when: load only when it answers true (e.g. a
 *   community is chosen); options.fallback: the error text when the server gave none;
 *   options.toast: also show the error as a toast.
 */
export function usePagedList(fetchPage, { size = 20, when = () => true, fallback = '列表加载失败', toast = false } = {}) {
  const rows = ref([])
  const total = ref(0)
  const page = ref(1)
  const pageSize = ref(size)
  const loading = ref(false)
  const error = ref('')

  async function load() {
    if (!when()) return
    loading.value = true
    error.value = ''
    try {
      const data = await fetchPage({ page: page.value, size: pageSize.value })
      rows.value = data.items || []
      total.value = data.total || 0
    } catch (e) {
      rows.value = []
      total.value = 0
      error.value = messageOf(e, fallback)
      if (toast) ElMessage.error(error.value)
    } finally {
      loading.value = false
    }
  }

  function first() {
    page.value = 1
    return load()
  }

  function onSizeChange(value) {
    pageSize.value = value
    return first()
  }

  return { rows, total, page, size: pageSize, loading, error, load, first, onSizeChange }
}
