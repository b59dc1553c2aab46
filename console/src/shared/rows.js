// v-row-test="'resident-row'" on an <el-table>: puts data-test on every body row, so a browser test
// can find a row (Element Plus offers row classes but no row attributes). Follows the table's
// re-renders (pages, filters, sorting) through a MutationObserver.
export const vRowTest = {
  mounted(el, binding) {
    const tag = () => {
      for (const row of el.querySelectorAll('.el-table__body tr.el-table__row')) {
        if (row.getAttribute('data-test') !== binding.value) row.setAttribute('data-test', binding.value)
      }
    }
    tag()
    el._rowTestObserver = new MutationObserver(tag)
    el._rowTestObserver.observe(el, { childList: true, subtree: true })
  },
  unmounted(el) {
    el._rowTestObserver?.disconnect()
  },
}
